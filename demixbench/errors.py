"""Error types. ``DemixbenchError`` is the one a user sees: the CLI prints its message on one
line, without a traceback. Each message says what is wrong and how to fix it."""


class DemixbenchError(Exception):
    """A problem the user can act on (bad input, missing data, unknown name)."""


class AudioError(DemixbenchError):
    """Audio that cannot be read, or samples the suite refuses (NaN/Inf, wrong shape)."""


class DatasetError(DemixbenchError):
    """A dataset path or layout that does not match what the reader expects."""


class SeparatorError(DemixbenchError):
    """A separator that cannot be built or that broke its output contract."""


class PluginError(SeparatorError):
    """A separator plugin (entry point) that failed to load."""


class SampleRateError(SeparatorError):
    """Audio given to a separator at a rate it does not accept."""


class MetricError(DemixbenchError):
    """Unknown metric, or inputs a metric cannot score."""


class StoreError(DemixbenchError):
    """A results store that cannot be opened or read."""


class ReportError(DemixbenchError):
    """A report or comparison that cannot be made from what the store holds."""
