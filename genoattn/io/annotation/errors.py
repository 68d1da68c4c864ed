"""Errors naming the file, the 1-based line, the record and the fix."""

from __future__ import annotations


class AnnotationError(ValueError):
    """Bad annotation input; the message names the file, the line, the record and the fix."""


def _err(path, lineno: int, line: str, problem: str, fix: str) -> AnnotationError:
    rec = line.rstrip("\r\n")
    if len(rec) > 200:
        rec = rec[:200] + "..."
    return AnnotationError(f"{path}, line {lineno}: {problem}. Record: {rec!r}. Fix: {fix}")
