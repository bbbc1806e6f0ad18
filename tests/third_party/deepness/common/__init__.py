""" Submodule that contains the common functions for the deepness plugin.
"""
