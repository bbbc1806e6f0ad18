"""Road networks: polyline geometry, APLS (SpaceNet's path-length metric) and, later, graph
extraction from masks. networkx graphs: nodes carry ``x``/``y`` in metres (a projected CRS),
edges ``geometry`` (an N x 2 float array running from the edge's first node to its second) and
``length`` in metres.
"""
