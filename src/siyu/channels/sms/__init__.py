"""SMS channels: Aliyun Dysmsapi and Tencent Cloud SMS, and their inbound callbacks
(delivery reports and replies, which feed the receipts and the global opt-out)."""
