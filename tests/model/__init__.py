"""Model-based tests of the job runner over in-memory sides."""
