"""WeCom (企业微信) and Official Account (公众号) connections of a workspace."""
