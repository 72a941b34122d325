"""Strategies: separators that wrap a separator (progressive inference lands here).

A strategy is itself a :class:`~demixbench.separators.Separator`; result rows carry its name,
its config hash and the step. A plain separator is the strategy ``"none"`` at step 0.
"""

NO_STRATEGY = "none"
