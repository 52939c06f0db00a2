from django.urls import path

from invoicing.api import views

urlpatterns = [
    path("invoices", views.InvoiceListView.as_view()),
    path("invoices/<uuid:invoice_id>", views.InvoiceDetailView.as_view()),
    path("invoices/<uuid:invoice_id>/pdf", views.InvoicePdfView.as_view()),
    path("invoices/<uuid:invoice_id>/credit-notes", views.CreditNoteView.as_view()),
    path("billing-runs", views.BillingRunListView.as_view()),
    path("billing-runs/<uuid:run_id>", views.BillingRunDetailView.as_view()),
    path("early-invoices", views.EarlyInvoiceView.as_view()),
    path("einvoicing/webhook", views.PlatformWebhookView.as_view()),
]
