"""Events: the event model and calendars (curated, user files, analyst ratings) and no-lookahead timing."""
