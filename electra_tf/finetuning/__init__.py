"""Fine-tuning tasks (spec 6): GLUE, question answering, tagging."""
