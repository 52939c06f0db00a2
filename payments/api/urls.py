from django.urls import path

from payments.api import views

urlpatterns = [
    path("payments", views.PaymentListView.as_view()),
    path("payments/webhook", views.PaymentWebhookView.as_view()),
    path("payments/manual", views.ManualPaymentView.as_view()),
    path("payments/<uuid:payment_id>", views.PaymentDetailView.as_view()),
]
