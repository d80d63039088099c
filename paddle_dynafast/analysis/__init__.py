"""Analysis: the accuracy x FLOPs grid (evaluate) and operating points for a budget (calibrate), on the model side."""
