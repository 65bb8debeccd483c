"""DVC stages, one module each, named as in dvc.yaml: prepare, tokenizer, base_model, finetune, evaluate, register."""
