"""Checkpoints in the format of the Music-Source-Separation-Training project (MSST): a YAML
config and a state dict, run by MSST's chunked overlap-add. :mod:`.config` reads the config,
:mod:`.networks` builds the network it describes from a maintained package and loads the state
dict strictly, :mod:`.demix` reproduces MSST's inference protocol."""
