"""The raster layer: any raster read by windows as the model's uint8 RGB with a valid mask
(rasters, radiometry, streamed PNG rows), the raster options of the CLI, mosaics, and the inputs a run
names (files, folders, lists, STAC items, object storage). numpy and Pillow; GDAL through rasterio where
installed ([geo]).
"""
