"""Runtime: distribution strategies, input pipelines, train/eval loops, checkpoints, logging."""
