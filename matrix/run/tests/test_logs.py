"""Cell logs stay small: each attempt capped, head and tail kept. Pure."""
from matrix.run.logs import cap_log_text


def test_cell_logs_are_capped_per_attempt_with_head_and_tail_kept():
    attempt = "[matrix 01:02:03] attempt 1: python app.py\n" + "".join(f"line {i}\n" for i in range(50000))
    attempt += "[matrix 01:02:09] attempt 1 done: exit=0\n"
    text = "# cell x\n" + attempt + attempt.replace("attempt 1", "attempt 2")
    capped = cap_log_text(text)
    assert len(capped) < 300 * 1024 < len(text)
    assert capped.startswith("# cell x\n[matrix 01:02:03] attempt 1: python app.py\nline 0\n")
    assert "attempt 1 done: exit=0" in capped and "attempt 2 done: exit=0" in capped
    assert capped.count("left out to keep the log small") == 2
    assert cap_log_text(capped) == capped  # idempotent
    assert cap_log_text("short\n") == "short\n"
