"""Authoring: build and rewrite extended indexes (``annotate``) and check them (``validate``)."""
