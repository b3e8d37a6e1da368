"""Training: any registered model on any supported dataset, through the deployed PreprocessSpec."""
