"""Where the answers change: bisect the releases of one package (issue 13).

- `search.py`: which releases to measure next, given the answers so far (pure; tested with fake measures);
- `lines.py`: what one bisect covers (a cell id with one version left open) and which releases it measures;
- `runner.py`: measures what the searches want through the engine, many lines at once, resumable;
- `history.py`: the timelines as data (history.json) and markdown (history.md), with explanations.
"""
