"""The field's file formats, in and out of the store (museval JSON so far)."""
