"""Model-side building blocks shared by the base_model, finetune and evaluate stages."""
