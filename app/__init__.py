"""ConvScope's Qt GUI (PySide6 + pyqtgraph): views only. Long work goes through ``app.jobs``;
TensorFlow is never imported at module level here (it loads in the background after the window shows)."""
