"""``demixbench train``: train the models of :mod:`demixbench.models` on any dataset spec."""
