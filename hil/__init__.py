"""Hardware-in-the-loop: scenarios written once, run against emulated or real boards."""
