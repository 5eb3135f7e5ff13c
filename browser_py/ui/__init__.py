"""The participant page, built from Python over small HTML (www/index.html) and CSS."""
