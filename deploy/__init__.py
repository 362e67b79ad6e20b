"""Deployment: ONNX / TensorRT export, runtimes, and the real-time control loop."""
