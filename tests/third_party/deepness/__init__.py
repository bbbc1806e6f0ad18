"""The Deepness QGIS plugin's model loading, unchanged (PUTvision/qgis-plugin-deepness, Apache-2.0,
commit f450c6342d82a200af32022b2d977231d4f71d3c, src/deepness/): ``processing/models/model_base.py``,
``segmentor.py``, ``preprocessing_utils.py`` and what they import. Only this file is ours (the
plugin's own ``__init__`` imports QGIS). tests/export/test_deepness.py loads our model with it.
"""
