"""The width bench's triggerer's plugins folder (``[core] plugins_folder`` of that process alone)."""
