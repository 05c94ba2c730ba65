"""Matching and ranking: one matcher per dimension, each returning a :class:`Check`
(verdict, fit, human reason); :mod:`compat.match.rank` orders the survivors."""
