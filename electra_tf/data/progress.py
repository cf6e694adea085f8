"""A small progress bar with rate and ETA, printed to stderr.

No third-party dependency.  Usable for anything that advances by counts:
bytes of input while building the pre-training data, steps while training.

    progress = Progress(total=num_bytes, unit="B", desc="building")
    for chunk in chunks:
        ...
        progress.update(len(chunk))
    progress.close()

On a terminal the bar is redrawn in place (carriage return) at most every
``min_interval`` seconds; on a pipe or a log file (not a TTY) a full line is
printed at most every ``log_interval`` seconds, so logs stay readable.
"""

import sys
import time

__all__ = ["Progress", "format_bytes", "format_count", "format_duration"]


def format_duration(seconds):
    """Formats seconds as ``1h02m``, ``3m05s`` or ``12.3s``."""
    if seconds is None or seconds != seconds or seconds < 0:  # None or NaN
        return "?"
    if seconds < 60:
        return "%.1fs" % seconds
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return "%dm%02ds" % (minutes, secs)
    hours, minutes = divmod(minutes, 60)
    return "%dh%02dm" % (hours, minutes)


def format_bytes(num):
    """Formats a byte count with a decimal unit (``3.1 MB``)."""
    num = float(num)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(num) < 1000 or unit == "TB":
            if unit == "B":
                return "%d B" % num
            return "%.1f %s" % (num, unit)
        num /= 1000.0
    return "%.1f TB" % num  # unreachable, keeps linters quiet


def format_count(num, unit=""):
    """Formats a count with k/M/G suffixes (``12.3k steps``)."""
    num = float(num)
    suffix = ""
    for suffix in ("", "k", "M", "G"):
        if abs(num) < 1000 or suffix == "G":
            break
        num /= 1000.0
    text = ("%d" % num) if suffix == "" else ("%.1f%s" % (num, suffix))
    return (text + " " + unit) if unit else text


class Progress(object):
    """Progress display: ``desc [#####-----]  45% 12.3 MB/27.0 MB 4.1 MB/s ETA 3.6s``.

    Args:
      total: expected final count, or None when unknown (then no bar or ETA).
      unit: "B" formats counts as bytes; any other string is appended to counts.
      desc: label printed first.
      stream: where to print (default: sys.stderr at construction time).
      enabled: False prints nothing; None (default) means True.
      min_interval: minimal seconds between redraws on a terminal.
      log_interval: minimal seconds between lines when the stream is not a TTY.
      width: bar width in characters.
    """

    def __init__(
        self,
        total=None,
        unit="B",
        desc="",
        stream=None,
        enabled=None,
        min_interval=0.2,
        log_interval=10.0,
        width=24,
    ):
        self.total = total if (total is None or total > 0) else None
        self.unit = unit
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = True if enabled is None else bool(enabled)
        try:
            self._tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self._tty = False
        self._interval = min_interval if self._tty else log_interval
        self.width = width
        self.count = 0
        self.postfix = ""
        self._start = time.monotonic()
        # The rate (and so the ETA) is measured from the first update on, so that
        # start-up time before any progress (imports, loading) does not skew it.
        self._first_time = None
        self._first_count = 0
        self._last_draw = None
        self._line_len = 0
        self._closed = False

    # -- public -----------------------------------------------------------------
    @property
    def elapsed(self):
        return time.monotonic() - self._start

    def update(self, n=1, postfix=None):
        """Advances by ``n`` and redraws if enough time has passed."""
        self.count += n
        self._mark_first()
        if postfix is not None:
            self.postfix = postfix
        self._maybe_draw()

    def write(self, message):
        """Prints a message line without garbling the bar (bar redrawn later)."""
        if self.enabled:
            self._clear()
        print(message, file=self.stream)
        self.stream.flush()
        self._last_draw = None

    def close(self):
        """Draws the final state once and ends the line."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        self._draw(final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    # -- rendering ----------------------------------------------------------------
    def _fmt(self, value):
        if self.unit == "B":
            return format_bytes(value)
        return format_count(value, self.unit)

    def _mark_first(self):
        if self._first_time is None:
            self._first_time = time.monotonic()
            self._first_count = self.count

    def _measured_rate(self):
        """Units per second since the first update, None until 0.5 s later."""
        if self._first_time is None:
            return None
        span = time.monotonic() - self._first_time
        if span < 0.5:
            return None
        return (self.count - self._first_count) / span

    def rate(self):
        """Units per second: since the first update, else over the whole time."""
        measured = self._measured_rate()
        if measured is not None:
            return measured
        elapsed = self.elapsed
        return self.count / elapsed if elapsed > 0 else 0.0

    def eta(self):
        """Seconds left at the rate since the first update, or None if unknown."""
        measured = self._measured_rate()
        if self.total is None or measured is None:
            return None
        if self.count >= self.total:
            return 0.0
        return (self.total - self.count) / max(measured, 1e-12)

    def render(self):
        """Returns the progress line (without carriage return or newline)."""
        parts = [self.desc] if self.desc else []
        rate = self.rate()
        if self.unit == "B":
            rate_text = format_bytes(rate) + "/s"
        else:
            rate_text = format_count(rate, self.unit) + "/s"
        if self.total is not None:
            frac = min(1.0, self.count / float(self.total))
            filled = int(round(frac * self.width))
            parts.append("[" + "#" * filled + "-" * (self.width - filled) + "]")
            parts.append("%3d%%" % int(frac * 100))
            parts.append("%s/%s" % (self._fmt(self.count), self._fmt(self.total)))
            parts.append(rate_text)
            if not self._closed:
                parts.append("ETA " + format_duration(self.eta()))
            else:
                parts.append("in " + format_duration(self.elapsed))
        else:
            parts.append(self._fmt(self.count))
            parts.append(rate_text)
            parts.append(format_duration(self.elapsed))
        if self.postfix:
            parts.append(self.postfix)
        return " ".join(parts)

    def _maybe_draw(self):
        if not self.enabled:
            return
        now = time.monotonic()
        if self._last_draw is not None and now - self._last_draw < self._interval:
            return
        if (
            self._last_draw is None
            and not self._tty
            and (self._measured_rate() is None or now - self._start < 1.0)
        ):
            return  # no line before there is a rate; none for very short jobs
        self._draw()

    def _clear(self):
        if self._tty and self._line_len:
            self.stream.write("\r" + " " * self._line_len + "\r")
            self._line_len = 0

    def _draw(self, final=False):
        self._last_draw = time.monotonic()
        line = self.render()
        if self._tty:
            pad = max(0, self._line_len - len(line))
            self.stream.write("\r" + line + " " * pad + ("\n" if final else ""))
            self._line_len = 0 if final else len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
