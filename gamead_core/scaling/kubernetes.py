"""Sets the worker count through the ``scale`` subresource of an ``apps/v1`` Deployment.

The official client is synchronous; :meth:`KubernetesScaler.current_replicas_async` and
:meth:`KubernetesScaler.set_replicas_async` run it in a thread. Each scaler owns its own
``Configuration``/``ApiClient`` (never the client library's global default). Client errors are translated
here, at the boundary, and chained with ``raise … from exc``::

    GameadError
    └── ScalerError              the Kubernetes API refused or failed a scale call
        ├── ScalerForbidden      401/403: credentials rejected, or RBAC lacks the verb on the resource
        ├── ScalerNotFound       404: no such Deployment (or namespace)
        ├── ScalerConflict       409: the Deployment changed since its scale was read (a write carries the
        │                        ``resourceVersion`` read); nothing was done: read again, then retry
        └── ScalerUnavailable    timeout, refused connection, TLS failure, 429, 5xx or an answer that is not
                                 JSON; retry later (``sent``: a request that went out and whose answer does not
                                 say whether it was carried out — none, a 5xx, not JSON — may have landed: read
                                 back)

A write is conditional on the count read (optimistic concurrency, as the Kubernetes API conventions define it in
"Concurrency Control and Consistency",
https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md):
:meth:`KubernetesScaler.set_replicas` sends the ``metadata.resourceVersion`` of the Scale read last by
:meth:`KubernetesScaler.current_replicas` in its merge patch, and the API server applies it only if the Deployment
still has that version, else answers 409 Conflict. So a decision taken on a count that changed since (``kubectl
scale``, an HPA, another leader's write) is not applied, and a PATCH a deposed leader sent that the API server
held lands nowhere once its successor has written. A change to the Deployment's status (a pod becoming ready) changes
the version too, so on a 409 the Scale is read again in the same call (as client-go's ``RetryOnConflict``): still at
the count the decision was made on, the PATCH is sent again with the new version (at most :data:`SCALE_ATTEMPTS`
PATCHes); at another count (an outside change) nothing is applied: :class:`ScalerConflict` with ``replicas_now``.
A write must follow a read of its own (:meth:`KubernetesScaler.set_replicas` refuses one that does not).

Unusable credentials (no kubeconfig, unknown context) raise :class:`gamead_core.errors.ConfigError` from
the constructor. The RBAC the scaler needs is in ``manifests/base/rbac.yaml``: ``get`` + ``patch`` on
``deployments/scale``, API group ``apps`` (it never reads the Deployment itself), and ``patch`` on ``pods`` to mark
the pods a scale-down removes first (:meth:`KubernetesScaler.mark_for_removal_async`, :mod:`.pod_cost`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)

from gamead_core.config.addresses import http_url_problem
from gamead_core.config.autoscaler import KubernetesScalerSettings
from gamead_core.errors import (  # the scaler's errors live in the one tree; re-exported here
    ConfigError,
    ScalerConflict,
    ScalerError,
    ScalerForbidden,
    ScalerNotFound,
    ScalerUnavailable,
)
from gamead_core.redact import redact_url
from gamead_core.scaling.apply import CALL_TIMEOUTS, SCALE_ATTEMPTS  # there: what a tick's calls may take
from gamead_core.scaling.backends import IN_CLUSTER_ENV, config_source  # noqa: F401 - re-exported
from gamead_core.scaling.bounds import replica_count
from gamead_core.scaling.call_thread import CallThread
from gamead_core.scaling.capped_answers import AnswerTooLarge, CappedAnswers
from gamead_core.scaling.kubeconfig import MAX_KUBECONFIG_BYTES, check_kubeconfig  # noqa: F401 - re-exported
from gamead_core.scaling.pod_cost import PodCosts
from gamead_core.scaling.removal import Mark
from gamead_core.scaling.server_said import MERGE_PATCH_CONTENT_TYPE, one_line, server_message

_API_GROUP = "apps"
_SCALE = "deployments/scale"

_T = TypeVar("_T")


class KubernetesScaler:
    """Reads and sets ``spec.replicas`` of one Deployment through its ``scale`` subresource."""

    def __init__(
        self, settings: KubernetesScalerSettings, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self._settings = settings
        env = os.environ if environ is None else environ
        configuration = k8s.Configuration()
        self.source = config_source(settings, env)
        kubeconfig = settings.kubeconfig or env.get("KUBECONFIG") or "~/.kube/config"
        try:
            if self.source == "in-cluster":
                # What load_incluster_config() does, but reading the environ we were given.
                InClusterConfigLoader(
                    token_filename=SERVICE_TOKEN_FILENAME, cert_filename=SERVICE_CERT_FILENAME, environ=env
                ).load_and_set(configuration)
            else:
                check_kubeconfig(kubeconfig)
                k8s_config.load_kube_config(
                    config_file=kubeconfig,
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
            where = "the pod's service account" if self.source == "in-cluster" else f"kubeconfig {kubeconfig}"
            raise ConfigError(f"cannot load Kubernetes credentials from {where}: {exc}") from exc
        if (problem := http_url_problem(configuration.host or "", "https://10.0.0.1:443")) is not None:
            where = ("the pod's KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT" if self.source == "in-cluster" else
                     f"kubeconfig {kubeconfig}")
            raise ConfigError(f"the Kubernetes API server address {redact_url(configuration.host)!r} from {where} "
                              f"cannot be used: {problem}")
        # One attempt per call: the caller decides about retries (see policy.retry_delay).
        configuration.retries = 0
        self.host: str = configuration.host
        self._api_client = k8s.ApiClient(configuration)
        # answers read up to a bound (attack30b F2: a 400 MB one took ~2 GB and froze the API's loop for seconds)
        self._api_client.rest_client.pool_manager = CappedAnswers(self._api_client.rest_client.pool_manager)
        self._apps = k8s.AppsV1Api(self._api_client)
        self.pods = PodCosts(self._api_client, settings)  #: marks the pods a scale-down removes first
        #: the async calls' thread: one at a time, each bounded, cut when given up on (attack30b F5)
        self._calls = CallThread(on_give_up=CappedAnswers.abort)
        #: (``metadata.resourceVersion``, ``spec.replicas``) of the Scale read last and not written since (None: none).
        self._read: tuple[str | None, int] | None = None

    @property
    def target(self) -> str:
        """``namespace/deployment``, for logs and decision records."""
        return f"{self._settings.namespace}/{self._settings.deployment}"

    def __repr__(self) -> str:
        return f"KubernetesScaler({self.target} via {self.host}, {self.source})"

    # --- calls ----------------------------------------------------------------------------------------

    def current_replicas(self) -> int:
        """``spec.replicas`` of the Deployment (0 when the server omits it); its ``resourceVersion`` is kept for the
        next :meth:`set_replicas`. Raises :class:`ScalerError` (a failed read keeps the version read before); a
        count no API server sends (:func:`replica_count`) is :class:`ScalerUnavailable`, an answer that is not a
        Scale."""
        s = self._settings

        def read() -> tuple[Any, int]:
            scale = self._apps.read_namespaced_deployment_scale(s.deployment, s.namespace,
                                                                _request_timeout=s.request_timeout)
            return scale, replica_count(getattr(getattr(scale, "spec", None), "replicas", None))

        scale, replicas = self._call("get", read)
        self._read = (getattr(getattr(scale, "metadata", None), "resource_version", None), replicas)
        return replicas

    def set_replicas(self, n: int) -> None:
        """Patch ``spec.replicas`` of the Deployment's scale to ``n``, on condition that the Deployment is still at the
        ``resourceVersion`` :meth:`current_replicas` read last (each read serves one write). On 409 Conflict the Scale
        is read again: at the count read before (only its status moved) the PATCH is sent again with the new version,
        up to :data:`SCALE_ATTEMPTS` PATCHes in all. Raises :class:`ScalerConflict` when nothing was applied: the count
        changed since it was read (``replicas_now`` is the new one), every attempt was refused, or the read again
        failed (``replicas_now`` None). Other errors: :class:`ScalerError`; ``ValueError`` for a count that is not a
        non-negative int, and ``RuntimeError`` (a programming error) for a write with no read of its own before it —
        both before any request."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"replicas must be a non-negative int, not {n!r}")
        if self._read is None:
            raise RuntimeError("set_replicas: no current_replicas read before it (a write is conditional on the "
                               "count its decision read; each read serves one write)")
        (version, based_on), self._read = self._read, None
        for attempt in range(1, SCALE_ATTEMPTS + 1):
            try:
                return self._patch(n, version)
            except ScalerConflict as exc:
                conflict = exc
            if attempt == SCALE_ATTEMPTS:
                break
            try:
                now = self.current_replicas()
            except ScalerError as exc:
                raise ScalerConflict(f"{conflict.message}; reading it again failed: {exc.message}",
                                     status=409, replicas_read=based_on) from exc
            (version, _), self._read = self._read or (None, now), None
            if now != based_on:
                raise ScalerConflict(
                    f"{self.target}'s count changed from {based_on} to {now} since it was read (409 Conflict), so "
                    f"the call to patch {_SCALE} did nothing", status=409, replicas_read=based_on, replicas_now=now,
                ) from conflict
        raise ScalerConflict(f"{conflict.message} ({SCALE_ATTEMPTS} attempts, each read again at {based_on} "
                             "replicas first)", status=409, replicas_read=based_on, replicas_now=based_on)

    def _patch(self, n: int, version: str | None) -> None:
        """One PATCH of ``spec.replicas`` to ``n`` on condition of ``version``. Raises :class:`ScalerError`."""
        s = self._settings
        # An API server always gives a version; without one the write could only be unconditional.
        body: dict[str, object] = {"spec": {"replicas": n}}
        if version is not None:
            body["metadata"] = {"resourceVersion": version}
        self._call(
            "patch",
            lambda: self._apps.patch_namespaced_deployment_scale(
                s.deployment,
                s.namespace,
                body,
                _content_type=MERGE_PATCH_CONTENT_TYPE,  # with ``metadata.resourceVersion``
                _request_timeout=s.request_timeout,
            ),
        )

    async def current_replicas_async(self) -> int:
        """:meth:`current_replicas` in a thread (:class:`CallThread`: its one HTTP call, connect and read, within
        2 × ``request_timeout`` in all, however slowly the answer comes). Raises :class:`ScalerError`."""
        return await self._calls.run(f"get {_SCALE} of {self.target} at {self.host}", self.current_replicas,
                                     self._within(1), sent=False)

    async def set_replicas_async(self, n: int) -> None:
        """:meth:`set_replicas` in a thread, within 2 × ``request_timeout`` per HTTP call it may make (its PATCHes
        and the reads between them); cut short, it may have landed (``sent``). Raises :class:`ScalerError`."""
        await self._calls.run(f"patch {_SCALE} of {self.target} at {self.host}", lambda: self.set_replicas(n),
                              self._within(2 * SCALE_ATTEMPTS - 1), sent=True)

    async def mark_for_removal_async(self, marks: list[Mark]) -> tuple[list[Mark], str]:
        """:meth:`PodCosts.mark` in a thread, all within one call's time: ``(marks landed, why it stopped or "")``.
        Cut by that deadline, the marks that landed before it are still returned (the ReplicaSet deletes them
        first), and why the rest were not made."""
        landed: list[Mark] = []
        try:
            return await self._calls.run(f"patch the deletion cost of {len(marks)} pod(s) in "
                                         f"{self._settings.namespace}", lambda: self.pods.mark(marks, landed),
                                         self._within(1), sent=True)
        except ScalerUnavailable as exc:  # the deadline (or an earlier call not returned: none landed)
            return list(landed), exc.message

    def _within(self, calls: int) -> float:
        return CALL_TIMEOUTS * self._settings.request_timeout * calls  # each call: a connect and a read

    def close(self) -> None:
        self._api_client.close()

    def __enter__(self) -> KubernetesScaler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the error boundary ---------------------------------------------------------------------------

    def _call(self, verb: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except ApiException as exc:
            raise self._from_status(verb, exc) from exc
        except AnswerTooLarge as exc:  # any status: what it said is unread, so a write may have landed: read back
            raise ScalerUnavailable(
                f"Kubernetes API at {self.host} answered the call to {verb} {_SCALE} of {self.target} with more "
                f"than {exc.limit} bytes (HTTP {exc.status}; a Scale is under 1 KiB): not read",
                sent=True, answer=f"an answer of more than {exc.limit} bytes to the call",
            ) from exc
        except ValueError as exc:  # a 2xx whose body the client could not read (json.JSONDecodeError, a bad field)
            what = "not JSON" if isinstance(exc, json.JSONDecodeError) else "not a Scale object"
            raise ScalerUnavailable(
                f"Kubernetes API at {self.host} answered the call to {verb} {_SCALE} of {self.target}, but the "
                f"answer was {what} ({one_line(exc, 120)})",
                sent=True, answer=f"an answer to the call that was {what}",  # a 2xx: a write may well have landed
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
            # NewConnectionError subclasses urllib3's TimeoutError: a refused connection is not a timeout.
            timed_out = isinstance(cause, (urllib3.exceptions.TimeoutError, TimeoutError))
            # Sent, then no answer: a read timeout, or the connection reset or closed while waiting for one.
            sent = isinstance(cause, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError,
                                      ConnectionResetError))
            if timed_out and not isinstance(cause, urllib3.exceptions.NewConnectionError):
                what = f"did not answer within {self._settings.request_timeout:g}s"
            elif sent:
                what = f"closed the connection without an answer ({one_line(cause)})"
            else:
                what = f"is unreachable ({one_line(cause)})"
            raise ScalerUnavailable(
                f"Kubernetes API at {self.host} {what} trying to {verb} {_SCALE} of {self.target}", sent=sent
            ) from exc

    def _from_status(self, verb: str, exc: ApiException) -> ScalerError:
        s = self._settings
        status = int(exc.status or 0)
        said = server_message(exc)
        if status == 401:
            return ScalerForbidden(
                f"Kubernetes API at {self.host} rejected the credentials (401 Unauthorized) while trying to "
                f"{verb} {_SCALE} of {self.target}; check the token in the kubeconfig / service account. "
                f"Server: {said}",
                status=status,
            )
        if status == 403:
            return ScalerForbidden(
                f"forbidden to {verb} {_SCALE} of {self.target}: RBAC must grant verb {verb!r} on resource "
                f"{_SCALE!r} in API group {_API_GROUP!r}, namespace {s.namespace!r} (manifests/base/rbac.yaml "
                f"grants get+patch on deployments/scale). Server: {said}",
                status=status,
            )
        if status == 404:
            return ScalerNotFound(
                f"no Deployment {s.deployment!r} in namespace {s.namespace!r} (or no such namespace) at "
                f"{self.host}. Server: {said}",
                status=status,
            )
        if status == 409:
            return ScalerConflict(
                f"{self.target} changed since its count was read (409 Conflict: no longer at the resourceVersion "
                f"read; its count or its status changed), so the call to {verb} {_SCALE} did nothing; it is read "
                f"again before the next try. Server: {said}",
                status=status,
            )
        if status == 0 or status == 429 or status >= 500:
            label = "no HTTP answer" if status == 0 else f"HTTP {status}"
            # A 5xx comes after the request went out: the API server's own timeout (504), etcd's (500 "etcdserver:
            # request timed out"), a proxy that lost the upstream's answer (502)… the write may have landed. A 429
            # (API priority and fairness) is refused before anything is done; a status 0 is the client's own.
            return ScalerUnavailable(
                f"Kubernetes API at {self.host} failed to {verb} {_SCALE} of {self.target} ({label}): {said}",
                status=status or None, sent=status >= 500, answer=f"HTTP {status} to the call",
            )
        return ScalerError(
            f"Kubernetes API at {self.host} answered HTTP {status} to {verb} {_SCALE} of {self.target}: "
            f"{said}",
            status=status,
        )
