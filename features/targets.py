"""What a forecast counts: the offence groups of serious violence.

Its own module, free of heavy imports, because the settings read it for their default
(and the command line reads the settings before it loads anything heavy).
"""

from __future__ import annotations

TARGET_GROUPS = ("violence", "robbery", "sexual")
"""The default target: victim-reported serious violence (never police-generated counts)."""
