"""The seed's backend, reduced to what the bench compares: GET /api/products/{id}.

As the seed designed it (FastAPI, pydantic models, products in a dict in memory), with the
product fields of the Rust backend. Every uvicorn worker is its own process with its own
dict, so the products are loaded at start-up from the JSON file PEER_PRODUCTS names (the
bench writes there what the Rust backend answered), not created through the API.
"""

import json
import os
from datetime import datetime
from uuid import UUID

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class Product(BaseModel):
    id: UUID
    name: str
    description: str
    category: str
    price_cents: int
    stock: int
    created_at: datetime
    updated_at: datetime


def load_products(path: str) -> dict[UUID, Product]:
    with open(path, encoding="utf-8") as file:
        products = [Product.model_validate(item) for item in json.load(file)]
    return {product.id: product for product in products}


products = load_products(os.environ["PEER_PRODUCTS"])
app = FastAPI(title="The seed's backend (bench peer)")


@app.get("/api/products/{product_id}", response_model=Product)
async def get_product(product_id: UUID) -> Product:
    product = products.get(product_id)
    if product is None:
        raise HTTPException(status_code=404, detail="Product not found")
    return product
