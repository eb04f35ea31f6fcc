"""The kernel: the one error class, settings, registries and plain records. Imports nothing else of synth."""
