"""Exceptions a user can act on: each message says what failed, where, and what to do."""

from __future__ import annotations


class CoursemartError(Exception):
    """Base of every error coursemart reports without a traceback."""

    exit_code = 1


class InputError(CoursemartError):
    """The user asked for something impossible (bad option value, bad path): exit code 2."""

    exit_code = 2


class LakeError(CoursemartError):
    """The lake cannot be read or written."""


class UnwritableLakeError(LakeError, InputError):
    """The lake path is a file, or cannot be written: a usage problem, exit code 2."""

    exit_code = 2
