"""What a kubeconfig file may be before the official Kubernetes client reads it, and when a refused one is read again.

The client reads a named file whole (``/dev/zero`` included) and its loader's work grows with the square of the
entries: a 1 MB kubeconfig of 23,000 clusters took 66 s of CPU to load (and be refused for an unknown context),
again at every autoscaler tick, on the API's event loop (attack30b F4: every ``/healthz`` and ``POST /ads`` timed
out for as long as it was configured). So before the client sees a file, :func:`check_kubeconfig` refuses one
that is not a regular file of at most :data:`MAX_KUBECONFIG_BYTES`, or that lists more than
:data:`MAX_KUBECONFIG_ENTRIES` clusters, users or contexts (counted by libyaml's C parser: under a second for
1 MB); and :func:`files_of` names the files whose change makes a refused kubeconfig worth reading again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import yaml

from gamead_core.config import check_file
from gamead_core.errors import ConfigError

#: Largest kubeconfig file read (bytes): a few KiB each, embedded certificates included; not /dev/zero.
MAX_KUBECONFIG_BYTES = 16 * 1024**2
#: Most clusters, users or contexts one kubeconfig file may list (a busy operator's has tens)
MAX_KUBECONFIG_ENTRIES = 1000
_LISTS = ("clusters", "users", "contexts")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it (its wheels are)
#: between the files of ``$KUBECONFIG``: the client's ``ENV_KUBECONFIG_PATH_SEPARATOR`` (``;`` on Windows, else ``:``),
#: not imported: the API imports this module at start, the client (~0.5 s) only once the backend is used
_SEPARATOR = os.pathsep
#: the service account's token and CA in a pod: the client's ``SERVICE_TOKEN_FILENAME``/``SERVICE_CERT_FILENAME``,
#: not imported for the same reason (review30 F10: 0.26 s on the loop at an in-cluster node's first tick)
SERVICE_ACCOUNT_FILES = ("/var/run/secrets/kubernetes.io/serviceaccount/token",
                         "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")


def check_kubeconfig(paths: str) -> None:
    """Each file of ``paths`` (``:``-separated, as ``$KUBECONFIG``) that exists must be a regular file of at most
    :data:`MAX_KUBECONFIG_BYTES` listing at most :data:`MAX_KUBECONFIG_ENTRIES` of each of clusters, users and
    contexts. Missing or unparsable ones are the client's to skip or refuse, in its own words. Raises
    :class:`ConfigError` naming the file and what is wrong."""
    for path in filter(None, paths.split(_SEPARATOR)):
        full = os.path.expanduser(path)
        if not os.path.lexists(full):
            continue
        check_file(full, what="kubeconfig", limit=MAX_KUBECONFIG_BYTES)
        try:
            with open(full, "rb") as file:
                data = yaml.load(file, Loader=_LOADER)  # noqa: S506 - a safe loader (C or Python)
        except (OSError, yaml.YAMLError):
            continue
        for name in _LISTS:
            entries = data.get(name) if isinstance(data, dict) else None
            if isinstance(entries, list) and len(entries) > MAX_KUBECONFIG_ENTRIES:
                raise ConfigError(f"kubeconfig {full} lists {len(entries)} {name}; at most {MAX_KUBECONFIG_ENTRIES} "
                                  f"are read (the client's loader takes minutes over such a file): is it the right "
                                  f"file?")


def files_of(kubeconfig: str | None, environ: Mapping[str, str], in_cluster: bool) -> list[str]:
    """The files credentials come from: the service account's token and CA (``in_cluster``), else each file of
    ``kubeconfig`` (the setting), ``$KUBECONFIG`` or ``~/.kube/config``, expanded."""
    if in_cluster:
        return list(SERVICE_ACCOUNT_FILES)
    paths = kubeconfig or environ.get("KUBECONFIG") or "~/.kube/config"
    return [os.path.expanduser(p) for p in paths.split(_SEPARATOR) if p]


def signature(files: list[str]) -> tuple[tuple[str, int, int, int] | str, ...]:
    """What changes when one of ``files`` is written, replaced, made or removed: (path, inode, size, mtime ns) of
    each, or the path alone for a missing one."""
    out: list[tuple[str, int, int, int] | str] = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            out.append(path)
            continue
        out.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)
