""" Main submodule for image processing and deep learning things.
"""
