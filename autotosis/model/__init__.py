"""ResNet18, checkpoints, predictors (torch and onnxruntime behind one load_predictor), ONNX export."""
