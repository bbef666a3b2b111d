"""The Strategic Needs Assessment: trends, spatial distribution, comparison, risk factors, monitoring.

:func:`models.needs.assessment.assess` computes every part of the evidence pack from a store;
``reports.needs_pack`` writes it (HTML, PDF, figures, CSV tables).
"""
