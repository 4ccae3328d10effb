"""Rules of the domain as functions of values (no database, no request): decision rules, the
canonical form of a position's text, the rule for visible characters, Dutch wall-clock time."""
