"""coursemart: a course-catalog datamart, from a synthetic catalog to a read-only API."""

__version__ = "0.1.0"
