-- Gitea push webhook deliveries already acted on (X-Gitea-Delivery), so a
-- redelivery — by Gitea's retry or by someone clicking "Test delivery"
-- again — deploys nothing twice. Times are Unix milliseconds (UTC).
CREATE TABLE webhook_deliveries (
    app         TEXT NOT NULL,
    delivery    TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (app, delivery)
);
