"""A secret setting still holding the template's placeholder is refused at load (attack39b F2).

``manifests/base/secret.example.env``, the template of the Secret the manifests deploy, holds ``REPLACE_ME_…``
values: public strings, in a public repository. Deployed as they are, they passed every check (25 characters of 13+
distinct ones are not "weak": :func:`gamead_core.api.auth.weak_tokens`), so the operator token (DLQ purge, scale
set) was a string anyone could read. A secret holding :data:`PLACEHOLDER_MARKER` is refused when the settings load:
``auth.tokens[].token``, ``nats.token``, ``nats.password`` and the CLI's ``client.token``, by every command,
``gamead config show`` too (exit 5, one line naming the setting, never the secret: ``gamead_core.config.load``).
"""

from __future__ import annotations

from pydantic import SecretStr, ValidationInfo

#: what marks every value of the template (manifests/base/secret.example.env); no random token holds it by chance
#: (``openssl rand -hex 32`` writes lower-case hex)
PLACEHOLDER_MARKER = "REPLACE_ME"


def placeholder_problem(secret: str) -> str | None:
    """Why ``secret`` cannot be used (it holds :data:`PLACEHOLDER_MARKER`), or None. Pure; the text never holds
    the secret."""
    if PLACEHOLDER_MARKER not in secret:
        return None
    return (f"still holds {PLACEHOLDER_MARKER}, the placeholder of the template manifests/base/secret.example.env "
            "(a public value): put a secret of your own there, e.g. from openssl rand -hex 32")


def refuse_placeholder(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    """A pydantic field validator's body: ``value`` unchanged, or :class:`ValueError` from
    :func:`placeholder_problem`, naming the entry of ``auth.tokens`` it belongs to (``info.data['name']``)."""
    if value is None or (problem := placeholder_problem(value.get_secret_value())) is None:
        return value
    name = info.data.get("name")
    raise ValueError(f"the token of {name!r} {problem}" if isinstance(name, str) else f"it {problem}")
