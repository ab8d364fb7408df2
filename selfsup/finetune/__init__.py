"""Fine-tuning for BERT's four cases: task specs, readers, feature windows, evaluation."""
