# STAND-IN package for umqtt (tests only; see ../README.md).
