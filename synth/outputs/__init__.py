"""Outputs: file exports, the dataset card, the HTML report and plot builders."""
