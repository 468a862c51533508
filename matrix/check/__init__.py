"""`check`: is my stack affected? The answer for a user's own stack, from their requirements or lock file.

One job per module, in the order a check runs:

    inputs.py    read requirements files, pip freeze and pins; pick the reader for a path
    lockfiles.py read uv.lock, poetry.lock, Pipfile.lock, pyproject.toml
    parsed.py    what every reader returns (Parsed, Entry, PythonHint), InputError, shared helpers
    stack.py     the normalized stack: one Python, one version (or range) per package
    models.py    the models the stack implies and why (rules: models.toml)
    versions.py  every pin is a release; a range becomes the newest release it allows
    results.py   the committed results (schema 2, schema 1 derived) and history.json
    lookup.py    per model: the exact or nearest cells, the fixes' own cells, the first fixed release
    model_answer.py  what lookup answers per model and route (Match, Fix, RouteAnswer, ModelAnswer)
    measure.py   --run: cells built from the stack's pins, run through the engine
    answer.py    the report as text and JSON, and the exit code

The command line (matrix/cli/checking.py) wires them together and prints.
"""
