"""SnapFlow method core and the LeRobot policy plugin types.

Time convention everywhere (as in LeRobot and openpi): t=1 is pure noise, t=0 is the clean action chunk,
x_t = t * noise + (1 - t) * actions, and the velocity is v = noise - actions.
"""
