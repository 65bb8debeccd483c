"""What the texts of both tasks are made of: AdvertiseGen attribute strings, control words and wording rules,
review feature mentions. Below metrics, so that a metric and the code it checks share one definition."""
