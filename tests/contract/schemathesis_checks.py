"""A schemathesis check of our own, loaded as a hook module by the contract test.

OpenAPI describes each value on its own; a few rules relate two values (`limit` with `page`,
`quantity` with `amount`, a filter in the query and again in the body) or a value to the
account's data (a `customer` id that is not one of the account's). A request that breaks only
such a rule is schema-valid and still refused. Schemathesis's `positive_data_acceptance` is
told to let 400 and 422 through, and this check puts the bar back: a schema-valid request may
be refused only with one of the problem types that name such a rule (docs/decisions.md).
"""

from __future__ import annotations

from typing import Any

import schemathesis

# The idempotency key names an earlier request with other parameters (422, as the IETF
# Idempotency-Key draft has it): a rule between this request and that one. A cursor is an
# opaque token: whether it names a page of this list only the server can tell.
RULE_PROBLEM_TYPES = (
    "conflicting-parameters",
    "unknown-reference",
    "idempotency-key-reused",
    "cursor-invalid",
    # A webhook URL whose host is a private or loopback address: a rule of the deployment
    # (LEDGERLINE_WEBHOOK_ALLOW_PRIVATE), not of the URL's form.
    "webhook-address-refused",
)


@schemathesis.check
def schema_valid_requests_refused_only_by_rules(ctx: Any, response: Any, case: Any) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if response.status_code not in (400, 422):
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    problem_type = str(problem.get("type", "")) if isinstance(problem, dict) else ""
    if problem_type.rsplit("/", 1)[-1] not in RULE_PROBLEM_TYPES:
        raise AssertionError(
            f"A schema-valid request was refused with {response.status_code} "
            f"({problem_type or 'no problem type'}): {problem.get('detail')}"
        )
