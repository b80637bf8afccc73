"""arcade-loadavg is an exec plugin: its program is the POSIX sh script ``arcade-loadavg``
(installed into the environment's ``bin/``); this package only carries its manifest."""
