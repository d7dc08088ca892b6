"""The per-request database session: commit once at the end of a successful request.

Work that must happen only once the transaction is durable (handing a job to the queue)
is registered with `after_commit` and runs after the commit, never on rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ledgerline.db import SQLITE_BEGIN_IMMEDIATE

AFTER_COMMIT = "ledgerline.after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def get_session(request: Request) -> Iterator[Session]:
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    session: Session = request.app.state.sessionmaker(
        execution_options={SQLITE_BEGIN_IMMEDIATE: True} if writes else {}
    )
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        callbacks = session.info.pop(AFTER_COMMIT, [])
        session.close()
    for callback in callbacks:
        callback()


# scope="function": the commit (and the after-commit work) happens before the response is
# sent, so a client never sees success for a write that then failed to commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
