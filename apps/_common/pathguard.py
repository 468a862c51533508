"""apps/ is on sys.path so that `_common` and `_django` import; its app folders must not import as packages.

On Python 3 a folder without __init__.py imports as a namespace package when no real package of that name
is installed: in the django-gevent app, `import channels` found apps/channels/, and sentry-sdk 2.26.1-2.49.0's
DjangoIntegration, seeing Channels "installed", read channels.__version__ and failed in init (a harness
artifact, not the SDK's doing: no user has our channels folder on their path). Installed on the first import
of `_common` or `_django` (before any app imports the SDK), this finder answers a top-level import of an app
folder's name from every sys.path entry but apps/ itself: the real package, or "No module named ...".
Python 2 has no namespace packages (and no find_spec): nothing to do there. Imports os and sys only (a green
app imports `_common` before monkeypatching).
"""
import os
import sys

APPS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _app_folders():
    names = set()
    for name in os.listdir(APPS_DIR):
        if not name.startswith("_") and os.path.isdir(os.path.join(APPS_DIR, name)) and \
                not os.path.exists(os.path.join(APPS_DIR, name, "__init__.py")):
            names.add(name)
    return names


class AppFoldersAreNotPackages(object):
    """A sys.meta_path finder (first in line) for the top-level names of the app folders."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        if path is not None or name not in self.names:
            return None
        from importlib.machinery import PathFinder

        elsewhere = [p for p in sys.path if isinstance(p, str) and os.path.abspath(p or os.curdir) != APPS_DIR]
        spec = PathFinder.find_spec(name, elsewhere)
        if spec is None:
            try:
                error = ModuleNotFoundError  # noqa: F821  (Python 3.6+)
            except NameError:
                error = ImportError
            raise error("No module named %r" % name, name=name)
        return spec


def install():
    if sys.version_info < (3, 4):
        return
    if not any(isinstance(finder, AppFoldersAreNotPackages) for finder in sys.meta_path):
        sys.meta_path.insert(0, AppFoldersAreNotPackages(_app_folders()))


install()
