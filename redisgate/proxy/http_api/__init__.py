"""The HTTP command API's language, sans-IO: Upstash's REST requests to argument lists, RESP
replies to its JSON and server-sent events, and its script dialect. The server that speaks it
is `clients.http_front_door`."""
